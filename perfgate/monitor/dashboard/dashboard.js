// perfgate live dashboard: subscribes to $sys:stats over the gateway and draws canvas charts.
// No build step and no dependencies. Protocol: docs/architecture.md §4.
"use strict";

(function () {
  const MAX_POINTS = 300; // five minutes at one snapshot per second
  const COLORS = ["#58a6ff", "#f0883e", "#3fb950", "#d2a8ff", "#e5484d"];
  const CHANNEL = "$sys:stats";

  // -- where the gateway is: ?ws= beats <meta name="perfgate-ws">, relative URLs allowed ------
  function gatewayUrl() {
    const params = new URLSearchParams(window.location.search);
    const meta = document.querySelector('meta[name="perfgate-ws"]');
    let raw = params.get("ws") || (meta && meta.content) || "/ws";
    if (raw.indexOf("{{") === 0) raw = "/ws"; // page served without substitution
    const url = new URL(raw, window.location.href);
    if (url.protocol === "http:") url.protocol = "ws:";
    if (url.protocol === "https:") url.protocol = "wss:";
    if (url.protocol !== "ws:" && url.protocol !== "wss:") throw new Error("not a ws URL: " + raw);
    const token = sessionStorage.getItem("perfgate-token") || params.get("token");
    if (token) url.searchParams.set("token", token);
    return url.toString();
  }

  // -- charts --------------------------------------------------------------------------------
  class Chart {
    constructor(id, series, unit) {
      this.canvas = document.getElementById(id);
      this.series = series.map((name, i) => ({ name: name, color: COLORS[i], values: [] }));
      this.unit = unit || "";
      this.times = [];
      this.legend = document.createElement("div");
      this.legend.className = "legend";
      this.canvas.parentNode.insertBefore(this.legend, this.canvas);
    }

    push(time, values) {
      this.times.push(time);
      this.series.forEach((s, i) => {
        const v = values[i];
        s.values.push(typeof v === "number" && isFinite(v) ? v : null);
      });
      if (this.times.length > MAX_POINTS) {
        this.times.shift();
        this.series.forEach((s) => s.values.shift());
      }
      const first = this.series[0].values.filter((v) => v !== null);
      this.canvas.dataset.points = String(first.length);
      this.canvas.dataset.last = first.length ? String(first[first.length - 1]) : "";
      this.draw();
    }

    draw() {
      const canvas = this.canvas;
      const ratio = window.devicePixelRatio || 1;
      const width = canvas.clientWidth || 320;
      const height = canvas.clientHeight || 160;
      if (canvas.width !== width * ratio || canvas.height !== height * ratio) {
        canvas.width = width * ratio;
        canvas.height = height * ratio;
      }
      const ctx = canvas.getContext("2d");
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.clearRect(0, 0, width, height);
      const left = 44, right = 8, top = 6, bottom = 16;
      const plotW = width - left - right, plotH = height - top - bottom;
      let max = 0;
      this.series.forEach((s) => s.values.forEach((v) => { if (v !== null && v > max) max = v; }));
      max = niceCeiling(max);
      ctx.font = "11px system-ui, sans-serif";
      ctx.fillStyle = "#7d8894";
      ctx.strokeStyle = "#26303b";
      ctx.lineWidth = 1;
      for (let i = 0; i <= 4; i++) {
        const y = top + plotH - (plotH * i) / 4;
        ctx.beginPath();
        ctx.moveTo(left, y);
        ctx.lineTo(left + plotW, y);
        ctx.stroke();
        ctx.textAlign = "right";
        ctx.fillText(formatNumber((max * i) / 4), left - 4, y + 4);
      }
      const n = this.times.length;
      if (n > 1) {
        const span = this.times[n - 1] - this.times[0] || 1;
        ctx.textAlign = "left";
        ctx.fillText("-" + Math.round(span) + " s", left, height - 3);
        this.series.forEach((s) => {
          ctx.strokeStyle = s.color;
          ctx.lineWidth = 1.5;
          ctx.beginPath();
          let pen = false;
          for (let i = 0; i < n; i++) {
            const v = s.values[i];
            if (v === null) { pen = false; continue; }
            const x = left + (plotW * (this.times[i] - this.times[0])) / span;
            const y = top + plotH - (plotH * v) / max;
            if (pen) ctx.lineTo(x, y); else ctx.moveTo(x, y);
            pen = true;
          }
          ctx.stroke();
        });
      }
      this.legend.replaceChildren(...this.series.map((s) => {
        const span = document.createElement("span");
        const swatch = document.createElement("i");
        swatch.style.background = s.color;
        const last = s.values.length ? s.values[s.values.length - 1] : null;
        span.append(swatch, s.name + " " + (last === null ? "–" : formatNumber(last) + this.unit));
        return span;
      }));
    }
  }

  function niceCeiling(value) {
    if (!(value > 0)) return 1;
    const magnitude = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) {
      if (value <= step * magnitude) return step * magnitude;
    }
    return 10 * magnitude;
  }

  function formatNumber(value) {
    if (Math.abs(value) >= 1e9) return (value / 1e9).toFixed(1) + "G";
    if (Math.abs(value) >= 1e6) return (value / 1e6).toFixed(1) + "M";
    if (Math.abs(value) >= 1e4) return (value / 1e3).toFixed(1) + "k";
    if (Math.abs(value) >= 100 || Number.isInteger(value)) return String(Math.round(value));
    return value.toFixed(value >= 10 ? 1 : 2);
  }

  function get(obj, path) {
    let node = obj;
    for (const key of path.split(".")) {
      if (node === null || typeof node !== "object" || !(key in node)) return null;
      node = node[key];
    }
    return typeof node === "number" ? node : null;
  }

  function queued(queue) {
    if (queue === null || typeof queue !== "object") return null;
    let total = 0;
    for (const p of ["high", "normal", "low"]) if (typeof queue[p] === "number") total += queue[p];
    return total;
  }

  const charts = {
    httpRate: new Chart("chart-http-rate", ["requests/s", "errors %"]),
    httpLatency: new Chart("chart-http-latency", ["p99", "p50"], " ms"),
    wsConnections: new Chart("chart-ws-connections", ["connections"]),
    wsRate: new Chart("chart-ws-rate", ["sent/s", "delivered/s"]),
    poolWorkers: new Chart("chart-pool-workers", ["busy", "total"]),
    queueDepth: new Chart("chart-queue-depth", ["queued", "high"]),
    cpu: new Chart("chart-cpu", ["process", "host"], "%"),
    memory: new Chart("chart-memory", ["host %", "RSS MiB"]),
  };

  // -- snapshot → charts and lists ---------------------------------------------------------
  function ingest(s) {
    if (s === null || typeof s !== "object") return;
    const t = typeof s.time === "number" ? s.time : Date.now() / 1000;
    charts.httpRate.push(t, [get(s, "http.total.throughput_per_s"), get(s, "http.total.error_rate_pct")]);
    charts.httpLatency.push(t, [get(s, "http.total.p99_ms"), get(s, "http.total.p50_ms")]);
    charts.wsConnections.push(t, [get(s, "gateway.connections")]);
    charts.wsRate.push(t, [get(s, "rates.ws_messages_sent_per_s"), get(s, "ws_delivery.throughput_per_s")]);
    charts.poolWorkers.push(t, [get(s, "pool.workers.busy"), get(s, "pool.workers.total")]);
    charts.queueDepth.push(t, [queued(s.pool ? s.pool.queue : null), get(s, "pool.queue.high")]);
    charts.cpu.push(t, [get(s, "system.process_cpu_pct"), get(s, "system.host_cpu_pct")]);
    const rss = get(s, "system.process_rss_bytes");
    charts.memory.push(t, [get(s, "system.host_memory_pct"), rss === null ? null : rss / 1048576]);
    renderList("alerts", s.alerts || [], (a) => [a.severity, a.message, a.id], "No active alerts");
    renderList("recommendations", s.recommendations || [],
      (r) => ["", r.message, r.figure + " = " + formatNumber(r.value)], "Nothing to recommend");
    renderRoutes((s.http && s.http.routes) || {});
    document.getElementById("window").textContent = "window " + s.window_s + " s";
  }

  function renderList(id, items, fields, emptyText) {
    const list = document.getElementById(id);
    list.dataset.count = String(items.length);
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "none";
      li.textContent = emptyText;
      list.replaceChildren(li);
      return;
    }
    list.replaceChildren(...items.map((item) => {
      const [cls, text, figure] = fields(item);
      const li = document.createElement("li");
      if (cls) li.className = cls;
      li.append(String(text));
      const small = document.createElement("span");
      small.className = "figure";
      small.textContent = String(figure);
      li.append(small);
      return li;
    }));
  }

  function renderRoutes(routes) {
    const body = document.querySelector("#routes tbody");
    body.replaceChildren(...Object.entries(routes).map(([name, r]) => {
      const tr = document.createElement("tr");
      const cells = [name, r.throughput_per_s, r.error_rate_pct, r.p50_ms, r.p95_ms, r.p99_ms, r.max_ms];
      for (const value of cells) {
        const td = document.createElement("td");
        td.textContent = typeof value === "number" ? formatNumber(value) : String(value);
        tr.append(td);
      }
      return tr;
    }));
  }

  // -- the gateway connection, with reconnects -----------------------------------------------
  const status = document.getElementById("status");
  let messages = 0;
  let retryMs = 500;

  function setStatus(kind, text) {
    status.className = "status status-" + kind;
    status.textContent = text;
  }

  function onFrame(frame) {
    if (frame.type === "welcome") {
      socket.send(JSON.stringify({ op: "subscribe", channel: CHANNEL, id: 1 }));
    } else if (frame.type === "ack" && frame.id === 1) {
      setStatus("live", "live");
      retryMs = 500;
    } else if (frame.type === "message" && frame.channel === CHANNEL) {
      count();
      ingest(frame.data);
    } else if (frame.type === "batch" && Array.isArray(frame.messages)) {
      for (const m of frame.messages) {
        if (m.channel === CHANNEL) { count(); ingest(m.data); }
      }
    } else if (frame.type === "error") {
      setStatus("down", "error: " + (frame.message || frame.code));
      alertsUnknown("not subscribed");
    }
  }

  // Without a live feed the alert list would read as an all-clear: say it is unknown.
  function alertsUnknown(why) {
    const li = document.createElement("li");
    li.className = "none unknown";
    li.textContent = "alerts unknown: " + why;
    const list = document.getElementById("alerts");
    list.dataset.count = "";
    list.replaceChildren(li);
  }

  function count() {
    messages += 1;
    status.dataset.messages = String(messages);
    if (!status.classList.contains("status-live")) setStatus("live", "live");
  }

  let socket = null;
  function connect() {
    let url;
    try {
      url = gatewayUrl();
    } catch (err) {
      setStatus("down", String(err.message));
      return;
    }
    status.dataset.url = url;
    socket = new WebSocket(url);
    socket.onmessage = (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch (err) { return; }
      onFrame(frame);
    };
    socket.onclose = () => {
      setStatus("down", "disconnected, retrying");
      alertsUnknown("not connected");
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }

  window.addEventListener("resize", () => Object.values(charts).forEach((c) => c.draw()));
  // A new token (entered in the job browser): reconnect with it.
  window.addEventListener("perfgate-token", () => { if (socket) socket.close(); });
  connect();
})();
