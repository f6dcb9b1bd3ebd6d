// Tapestry participant page: joins (or resumes with the token kept in localStorage), moves
// its own mood on the XY pad, plays notes of the communal scale, shows the room.
"use strict";
(function () {
  const KEYS = 8;               // play surface: 8 keys across the voice's register
  const MOOD_EVERY_MS = 50;     // pad moves are sent at most 20 times a second
  const TOKEN = "tapestry-token";
  const $ = (id) => document.getElementById(id);
  let ws = null, joined = false, over = false, retryMs = 500, pad = ["energy", "tension"];
  let dims = [], pendingMood = null, moodTimer = null;

  function setStatus(state, text) { const s = $("status"); s.dataset.state = state; s.textContent = text; }
  function send(frame) { if (ws && ws.readyState === 1) ws.send(JSON.stringify(frame)); }

  function connect() {
    if (over) return;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + "/ws");
    ws.onopen = () => { retryMs = 500; send({ t: "join", token: localStorage.getItem(TOKEN) || undefined }); };
    ws.onmessage = (e) => receive(JSON.parse(e.data));
    ws.onclose = () => {
      joined = false;
      if (over) return;
      setStatus("lost", "reconnecting…");
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 8000);
    };
  }

  function receive(f) {
    switch (f.t) {
      case "welcome":
        localStorage.setItem(TOKEN, f.token);
        joined = true; dims = f.dims; pad = f.pad;
        $("pad-x").textContent = pad[0] + " →"; $("pad-y").textContent = pad[1] + " →";
        setStatus("joined", (f.resumed ? "back in" : "joined") + " as participant " + f.participant);
        document.body.dataset.participant = f.participant;
        if (f.voice) showVoice(f.voice);
        buildBars();
        break;
      case "voice": showVoice(f); break;
      case "state": showState(f); break;
      case "refused": end("the room is full (" + f.reason + ")"); break;
      case "removed": end("the conductor let you go"); break;
      case "error": console.warn("tapestry:", f.reason); break;
    }
  }

  function end(text) { over = true; localStorage.removeItem(TOKEN); setStatus("over", text); if (ws) ws.close(); }
  function showVoice(v) { $("voice-name").textContent = v.archetype + " (" + v.role + ")"; document.body.dataset.voice = v.archetype; }

  function buildBars() {
    const box = $("mood"); box.textContent = "";
    for (const d of dims) {
      const label = document.createElement("span"); label.textContent = d.name;
      const bar = document.createElement("div"); bar.className = "bar";
      const fill = document.createElement("div"); fill.id = "bar-" + d.name; bar.appendChild(fill);
      box.append(label, bar);
    }
  }

  function showState(s) {
    $("section").textContent = s.section || "…";
    for (const d of dims) {
      const el = $("bar-" + d.name); const v = s.mood[d.name];
      if (el && typeof v === "number") el.style.width = (100 * (v - d.min) / ((d.max - d.min) || 1)) + "%";
    }
  }

  function range(name) { return dims.find((d) => d.name === name) || { min: 0, max: 1 }; }

  function movePad(e) {
    const r = $("pad").getBoundingClientRect();
    const x = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    const y = Math.min(1, Math.max(0, 1 - (e.clientY - r.top) / r.height));
    $("pad-dot").style.left = (x * 100) + "%"; $("pad-dot").style.top = ((1 - y) * 100) + "%";
    const [a, b] = [range(pad[0]), range(pad[1])];
    pendingMood = { [pad[0]]: a.min + x * (a.max - a.min), [pad[1]]: b.min + y * (b.max - b.min) };
    if (!moodTimer) moodTimer = setTimeout(flushMood, MOOD_EVERY_MS);
  }
  function flushMood() { moodTimer = null; if (pendingMood && joined) send({ t: "mood", values: pendingMood }); pendingMood = null; }

  function buildKeys() {
    const box = $("keys");
    for (let i = 0; i < KEYS; i++) {
      const b = document.createElement("button"); b.textContent = String(i + 1); b.dataset.key = i;
      b.addEventListener("pointerdown", (e) => {
        e.preventDefault();
        if (joined) send({ t: "tap", x: (i + 0.5) / KEYS, velocity: 0.8 });
        b.classList.add("on"); setTimeout(() => b.classList.remove("on"), 150);
      });
      box.appendChild(b);
    }
  }

  const padEl = $("pad");
  padEl.addEventListener("pointerdown", (e) => { padEl.setPointerCapture(e.pointerId); movePad(e); });
  padEl.addEventListener("pointermove", (e) => { if (e.buttons || e.pointerType === "touch") movePad(e); });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && (!ws || ws.readyState > 1)) connect();
  });
  buildKeys();
  connect();
})();
