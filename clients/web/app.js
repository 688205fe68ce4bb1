// facecast browser client: WebRTC viewer (+ mic / webcam sender) and a WebSocket for
// server-side TTS, state hints and session events. Plain JS, no build step.
// URL parameters: ?mode=echo|assistant|webcam  &mic=0|1  &cam=0|1  &mirror=0|1  &autoconnect=1
//                 &token=TOKEN  (the server's bearer token, when it has one: docs/security.md)
"use strict";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const STATS_INTERVAL_MS = 1000;
const TOKEN = params.get("token") || "";
// Authorization header for fetch(); the browser's WebSocket cannot set headers: ?token= instead.
const authHeaders = () => (TOKEN ? { Authorization: `Bearer ${TOKEN}` } : {});

// Everything a user (or a test) may want to look at lives here.
const facecast = (window.facecast = {
  pc: null, ws: null, sessionId: null, mode: null, state: "idle", connected: false, generation: 0,
  firstFrameAt: null, framesPresented: 0, events: [], stats: {}, error: null,
  connect, disconnect, speak, interrupt,
});

let statsTimer = null;
let echoMeter = null;

function logEvent(text, cls = "") {
  const li = document.createElement("li");
  li.className = cls;
  const t = new Date().toLocaleTimeString([], { hour12: false });
  li.textContent = `${t}  ${text}`;
  const log = $("log");
  log.prepend(li);
  while (log.children.length > 60) log.lastChild.remove();
}

function setConn(label, cls) {
  $("conn").textContent = label;
  $("conn").className = `pill ${cls}`;
}

function setState(state) {
  facecast.state = state;
  $("state").textContent = state;
  $("state").className = `pill state ${state}`;
}

function setBusy(connected) {
  facecast.connected = connected;
  $("connect").disabled = connected;
  $("disconnect").disabled = !connected;
  $("mode").disabled = connected;
  $("mirror").disabled = connected;   // sent with the offer: fixed for the connection
  for (const id of ["speak", "interrupt", "thinking"]) $(id).disabled = !connected;
  $("stats").hidden = !connected;
  $("placeholder").hidden = connected;
}

async function getLocalMedia(mode) {
  const wantMic = $("mic").checked || mode === "echo";
  const wantCam = $("cam").checked || mode === "webcam";
  if (!wantMic && !wantCam) return null;
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: wantMic ? { echoCancellation: true, noiseSuppression: false, autoGainControl: false } : false,
      video: wantCam ? { width: 640, height: 480, frameRate: 25 } : false,
    });
  } catch (err) {
    const what = [wantMic && "microphone", wantCam && "webcam"].filter(Boolean).join(" and ");
    if (mode === "assistant") {  // only listening cues need the mic: watch without it
      logEvent(`no ${what} (${err.name}); watching only`, "err");
      return null;
    }
    throw new Error(`${mode} mode needs the ${what}: ${err.name} ${err.message}`);
  }
}

function waitIceGathering(pc, timeoutMs = 3000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") { clearTimeout(t); resolve(); } };
    const t = setTimeout(resolve, timeoutMs);  // send what we have: host candidates come first
    pc.addEventListener("icegatheringstatechange", done);
  });
}

async function connect() {
  if (facecast.pc) return;
  const mode = $("mode").value;
  facecast.mode = mode;
  facecast.error = null;
  facecast.t0 = performance.now();
  facecast.marks = { connect: facecast.t0 };
  resetConnectionState();
  const generation = ++facecast.generation;
  setConn("connecting…", "wait");
  setBusy(true);
  try {
    await waitServerWarm(generation);
    const local = await getLocalMedia(mode);
    facecast.marks.media = performance.now();
    facecast.local = local;
    const pc = new RTCPeerConnection({ iceServers: [] });
    facecast.pc = pc;
    const audioTrack = local && local.getAudioTracks()[0];
    const videoTrack = local && local.getVideoTracks()[0];
    $("mic").checked = Boolean(audioTrack);  // the mode may have asked for more than the toggles
    $("cam").checked = Boolean(videoTrack);
    pc.addTransceiver(audioTrack || "audio", { direction: audioTrack ? "sendrecv" : "recvonly", streams: local ? [local] : [] });
    pc.addTransceiver(videoTrack || "video", { direction: videoTrack ? "sendrecv" : "recvonly", streams: local ? [local] : [] });
    if (videoTrack) { $("selfview").srcObject = new MediaStream([videoTrack]); $("selfview").hidden = false; }

    const remote = new MediaStream();
    pc.ontrack = (ev) => {
      remote.addTrack(ev.track);
      const video = $("avatar");
      if (video.srcObject !== remote) video.srcObject = remote;
      playWithSound(video);
    };
    pc.onconnectionstatechange = () => {
      const s = pc.connectionState;
      if (s === "connected") setConn("connected", "on");
      else if (s === "failed" || s === "closed") { setConn(s, "off"); if (s === "failed") disconnect(); }
      else setConn(s, "wait");
    };

    await pc.setLocalDescription(await pc.createOffer());
    await waitIceGathering(pc);
    facecast.marks.ice = performance.now();
    const resp = await fetch("/v1/offer", {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: pc.localDescription.type, mode,
                             ...(mode === "webcam" ? { mirror: $("mirror").checked } : {}) }),
    });
    const answer = await resp.json().catch(() => ({ error: `HTTP ${resp.status}` }));
    if (!resp.ok) throw new Error(`offer refused (HTTP ${resp.status}): ${answer.error || ""} ${answer.message || ""}`);
    facecast.sessionId = answer.session_id;
    $("sid").textContent = answer.session_id;
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
    facecast.marks.answer = performance.now();
    logEvent(`session ${answer.session_id} (${mode})`);
    watchFrames($("avatar"), generation);
    openSocket(answer.session_id);
    statsTimer = setInterval(updateStats, STATS_INTERVAL_MS);
    if (mode === "echo" && audioTrack) echoMeter = startEchoMeter(audioTrack, remote);
  } catch (err) {
    facecast.error = String(err && err.message || err);
    logEvent(`error: ${facecast.error}`, "err");
    await disconnect();
    setConn("error", "off");
  }
}

// Everything measured or shown for one connection starts from zero on the next one.
function resetConnectionState() {
  facecast.firstFrameAt = null;
  facecast.framesPresented = 0;
  facecast.events = [];
  facecast.stats = {};
  facecast.serverStats = null;
  facecast.displayDelayMs = null;
  facecast.speakSentAt = null;
  facecast.speakToStartMs = null;
  last = null;
  statsTicks = 0;
  $("log").replaceChildren();
  for (const id of ["s-fps", "s-latency", "s-e2e", "s-speak", "s-dropped", "s-server", "s-codec", "s-size"])
    $(id).textContent = "–";
}

// The first session waits for the server to load its model and renderer: say so.
async function waitServerWarm(generation, maxMs = 120000) {
  const t0 = performance.now();
  while (performance.now() - t0 < maxMs && generation === facecast.generation) {
    let health = null;
    try { health = await (await fetch("/healthz")).json(); } catch (_) { return; }
    if (!health || !health.warming) return;
    if (!facecast.warmingShown) { facecast.warmingShown = true; logEvent("server warming up…"); }
    setConn("server warming up…", "wait");
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function disconnect() {
  facecast.generation++;
  clearInterval(statsTimer);
  statsTimer = null;
  if (echoMeter) { echoMeter.stop(); echoMeter = null; }
  if (facecast.ws) { try { facecast.ws.close(1000); } catch (_) {} facecast.ws = null; }
  if (facecast.pc) { facecast.pc.close(); facecast.pc = null; }
  if (facecast.local) { facecast.local.getTracks().forEach((t) => t.stop()); facecast.local = null; }
  $("avatar").srcObject = null;
  $("selfview").hidden = true;
  $("unmute").hidden = true;
  setBusy(false);
  setConn("disconnected", "off");
  setState("idle");
}

function playWithSound(video) {
  video.muted = false;
  video.play().catch(() => {
    // Autoplay policy: start muted, offer a click to hear the avatar.
    video.muted = true;
    video.play().catch(() => {});
    $("unmute").hidden = false;
  });
}

$("unmute").onclick = () => { $("avatar").muted = false; $("unmute").hidden = true; };

// ---- WebSocket: events, speak, interrupt, state hints --------------------------------------
function openSocket(sessionId) {
  const query = TOKEN ? `?token=${encodeURIComponent(TOKEN)}` : "";
  const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws${query}`;
  const ws = new WebSocket(url);
  facecast.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: "session.attach", session_id: sessionId }));
  ws.onmessage = (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch (_) { return; }
    facecast.events.push(ev);
    if (ev.type === "state") setState(ev.state);
    else if (ev.type === "error") logEvent(`error ${ev.code}: ${ev.message}`, "err");
    else if (ev.type === "warning") logEvent(`warning: ${ev.message}`, "err");
    else if (ev.type === "playback.finished")
      logEvent(`segment ${ev.segment} finished at ${ev.position_s.toFixed(2)} s${ev.interrupted ? " (interrupted)" : ""}`);
    else if (ev.type === "playback.started") {
      if (facecast.speakSentAt != null) {  // text box → first frame of its speech left the server
        facecast.speakToStartMs = performance.now() - facecast.speakSentAt;
        facecast.speakSentAt = null;
        $("s-speak").textContent = `${facecast.speakToStartMs.toFixed(0)} ms`;
      }
      logEvent(`segment ${ev.segment} started`);
    }
    else if (ev.type === "session.ready") logEvent("control channel ready");
  };
  ws.onclose = (e) => { if (facecast.ws === ws && facecast.connected) logEvent(`control channel closed (${e.code})`, "err"); };
}

function send(msg) {
  if (facecast.ws && facecast.ws.readyState === WebSocket.OPEN) facecast.ws.send(JSON.stringify(msg));
}

function speak(text) {
  if (!text || !text.trim()) return;
  facecast.speakSentAt = performance.now();
  send({ type: "speak", text });
}
function interrupt() { send({ type: "interrupt" }); }

$("say").onsubmit = (e) => { e.preventDefault(); speak($("text").value); };
$("interrupt").onclick = interrupt;
$("thinking").onclick = () => send({ type: "state", state: "thinking" });
$("connect").onclick = connect;
// While connected the toggles mute / pause what is already being sent (no renegotiation).
for (const [id, kind] of [["mic", "audio"], ["cam", "video"]]) {
  $(id).onchange = () => {
    if (!facecast.local) return;
    const tracks = kind === "audio" ? facecast.local.getAudioTracks() : facecast.local.getVideoTracks();
    tracks.forEach((t) => { t.enabled = $(id).checked; });
    if (tracks.length) logEvent(`${id} ${$(id).checked ? "on" : "off"}`);
    else if ($(id).checked) logEvent(`${id}: reconnect to start sending it`);
  };
}
$("disconnect").onclick = disconnect;

// ---- frames and stats ------------------------------------------------------------------------
function watchFrames(video, generation) {
  if (!("requestVideoFrameCallback" in HTMLVideoElement.prototype)) return;
  const onFrame = (now, meta) => {
    // a callback left from an earlier connection stops here (else frames would count twice)
    if (!facecast.pc || generation !== facecast.generation) return;
    facecast.framesPresented++;
    if (facecast.firstFrameAt === null) {
      facecast.firstFrameAt = facecast.marks.firstFrame = performance.now();
      logEvent(`first frame after ${((facecast.firstFrameAt - facecast.t0) / 1000).toFixed(2)} s`);
    }
    if (meta.receiveTime) facecast.displayDelayMs = meta.expectedDisplayTime - meta.receiveTime;
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

// Server-side frame health from /metrics (server-wide: all sessions): frames the renderer
// could not finish in time (the previous picture was repeated) or the clock skipped.
var statsTicks = 0;
async function updateServerStats() {
  try {
    const text = await (await fetch("/metrics", { headers: authHeaders() })).text();
    const value = (re) => { const m = text.match(re); return m ? Number(m[1]) : 0; };
    const repeated = value(/^facecast_frames_total\{kind="repeated"\} ([0-9.e+]+)/m);
    const skipped = value(/^facecast_frames_total\{kind="skipped"\} ([0-9.e+]+)/m);
    const rendered = value(/^facecast_frames_total\{kind="rendered"\} ([0-9.e+]+)/m);
    facecast.serverStats = { repeated, skipped, rendered };
    $("s-server").textContent = `${repeated + skipped} of ${rendered + repeated + skipped}`;
  } catch (_) { /* metrics are optional */ }
}

var last = null;
async function updateStats() {
  const pc = facecast.pc;
  if (!pc) return;
  const report = await pc.getStats();
  if (facecast.pc !== pc) return;   // reconnected meanwhile: these numbers are the old connection's
  let video = null, pair = null;
  const codecs = {};
  report.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") video = s;
    else if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s;
    else if (s.type === "codec") codecs[s.id] = s.mimeType;
  });
  if (!video) return;
  const now = performance.now();
  const presented = facecast.framesPresented;
  const fps = last ? ((presented - last.presented) * 1000) / (now - last.now) : video.framesPerSecond || 0;
  last = { now, presented };
  const rttMs = pair && pair.currentRoundTripTime ? pair.currentRoundTripTime * 1000 : 0;
  const jbMs = video.jitterBufferEmittedCount ? (1000 * video.jitterBufferDelay) / video.jitterBufferEmittedCount : 0;
  const decodeMs = video.framesDecoded ? (1000 * video.totalDecodeTime) / video.framesDecoded : 0;
  // receive → display (rVFC) covers jitter buffer, decode and A/V-sync wait; without it, estimate
  const toDisplayMs = facecast.displayDelayMs > 0 ? facecast.displayDelayMs : jbMs + decodeMs;
  const latencyMs = rttMs / 2 + toDisplayMs;
  const s = (facecast.stats = {
    fps, latencyMs, rttMs, jitterBufferMs: jbMs, decodeMs, receiveToDisplayMs: toDisplayMs,
    framesReceived: video.framesReceived, framesDecoded: video.framesDecoded,
    framesDropped: video.framesDropped || 0, packetsLost: video.packetsLost || 0,
    freezeCount: video.freezeCount || 0, width: video.frameWidth, height: video.frameHeight,
    codec: codecs[video.codecId] || "", echoE2eMs: echoMeter ? echoMeter.latencyMs : null,
  });
  $("s-fps").textContent = fps.toFixed(1);
  $("s-latency").textContent = `${latencyMs.toFixed(0)} ms`;
  $("s-e2e").textContent = s.echoE2eMs == null ? "–" : `${s.echoE2eMs.toFixed(0)} ms`;
  $("s-dropped").textContent = `${s.framesDropped} (lost pkts ${s.packetsLost})`;
  $("s-codec").textContent = s.codec.replace("video/", "");
  if (++statsTicks % 3 === 0) updateServerStats();
  $("s-size").textContent = s.width ? `${s.width}×${s.height}` : "–";
}

// Echo mode: true mouth-to-ear latency = onset of speech in the avatar's audio minus the
// onset of the same speech in the microphone (levels from two WebAudio analysers).
function startEchoMeter(micTrack, remoteStream) {
  const ctx = new AudioContext();
  const level = (stream) => {
    const an = ctx.createAnalyser();
    an.fftSize = 1024;
    ctx.createMediaStreamSource(stream).connect(an);
    const buf = new Float32Array(an.fftSize);
    return () => { an.getFloatTimeDomainData(buf); let e = 0; for (const x of buf) e += x * x; return Math.sqrt(e / buf.length); };
  };
  const mic = level(new MediaStream([micTrack]));
  let out = null;
  const meter = { latencyMs: null, stop: () => { clearInterval(timer); ctx.close(); } };
  const ON = 0.02, QUIET_MS = 250;
  let micLastLoud = 0, outLastLoud = 0, micOnset = null;
  const timer = setInterval(() => {
    if (!out && remoteStream.getAudioTracks().length) out = level(remoteStream);
    const t = performance.now();
    if (mic() > ON) { if (t - micLastLoud > QUIET_MS && micOnset === null) micOnset = t; micLastLoud = t; }
    if (out) {
      if (out() > ON) {
        if (t - outLastLoud > QUIET_MS && micOnset !== null) {
          const ms = t - micOnset;
          if (ms > 0 && ms < 3000) meter.latencyMs = meter.latencyMs == null ? ms : 0.7 * meter.latencyMs + 0.3 * ms;
          micOnset = null;
        }
        outLastLoud = t;
      }
    }
  }, 10);
  return meter;
}

// ---- start-up ---------------------------------------------------------------------------------
if (["assistant", "echo", "webcam"].includes(params.get("mode"))) $("mode").value = params.get("mode");
if (params.has("mic")) $("mic").checked = params.get("mic") !== "0";
if (params.has("cam")) $("cam").checked = params.get("cam") !== "0";
if (params.has("mirror")) $("mirror").checked = params.get("mirror") !== "0";
setBusy(false);
if (params.get("autoconnect") === "1") connect();
