// Tapestry conductor page: authenticates with the key in its URL, shows who is in, the
// communal mood, section, levels and the web counters; moves communal faders, cues sections
// and removes participants.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const key = new URLSearchParams(location.search).get("key") || "";
  let ws = null, built = false;
  function send(frame) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(frame)); }
  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + "/ws");
    ws.onopen = () => send({ t: "conductor", key: key });
    ws.onmessage = (e) => receive(JSON.parse(e.data));
    ws.onclose = () => { $("status").textContent = "reconnecting…"; setTimeout(connect, 1000); };
  }
  function receive(f) {
    if (f.t === "conductor") $("status").textContent = f.ok ? "conducting" : "wrong key";
    if (f.t === "conductor_state") show(f);
  }
  function build(f) {
    const faders = $("faders");
    for (const d of f.dims) {
      const name = d.name;
      const label = document.createElement("span"); label.textContent = name;
      const input = document.createElement("input"); input.type = "range";
      input.min = d.min; input.max = d.max; input.step = (d.max - d.min) / 100;
      input.id = "fader-" + name; input.value = f.mood[name];
      input.addEventListener("input", () => send({ t: "communal", values: { [name]: Number(input.value) }, ramp_secs: 0.1 }));
      faders.append(label, input);
    }
    cues(f.sections);
    built = true;
  }
  function show(f) {
    if (!built) build(f);
    $("section").textContent = f.section; $("bar").textContent = f.bar;
    $("count").textContent = f.participants; $("phones").textContent = f.phones;
    const db = (x) => x > 0 ? (20 * Math.log10(x)).toFixed(1) : "-inf";
    $("peak").textContent = db(f.peaks[0]) + " / " + db(f.peaks[1]);
    $("lufs").textContent = typeof f.lufs === "number" ? f.lufs.toFixed(1) : "…";
    const body = $("list"); body.textContent = "";
    for (const p of f.list.slice(0, 200)) {
      const tr = document.createElement("tr");
      for (const v of [p.participant, p.voice || "…", p.connected ? "yes" : "away", p.mood.map((m) => m.toFixed(2)).join(" ")]) {
        const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      }
      const td = document.createElement("td"); const b = document.createElement("button");
      b.textContent = "remove"; b.onclick = () => send({ t: "remove", participant: p.participant });
      td.appendChild(b); tr.appendChild(td); body.appendChild(tr);
    }
    $("counters").textContent = Object.entries(f.web).map(([k, v]) => k + " " + v).join(" · ");
  }
  function cues(sections) {
    const box = $("cues");
    for (const s of sections) {
      const b = document.createElement("button"); b.textContent = s;
      b.onclick = () => send({ t: "cue", section: s }); box.appendChild(b);
    }
  }
  connect();
})();
