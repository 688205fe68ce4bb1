// facecast's WebXR client (served at /vr): renders the avatar locally at display rate from a
// motion-mode session (motion on a data channel, voice on Opus, docs/protocol.md) — in stereo
// with head-tracked parallax inside a WebXR session, or as a 3D canvas with orbit controls.
// URL: /vr?session=ID (view a session an assistant created with "output": "motion"),
//      &avatar=NAME, &view=photo (the Python renderer's framing, 512×512), &connect=0 (no stream),
//      &xr=emulate (an emulated Quest 3: Meta's iwer runtime, to try the XR path without a headset),
//      &size=WxH (canvas size instead of the window's), &token=TOKEN (the server's bearer token, when it has one: docs/security.md).
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { VRButton } from 'three/addons/webxr/VRButton.js';
import { Avatar, photoCamera } from './avatar.js';
import { MotionStream } from './motion.js';

const params = new URLSearchParams(location.search);
const photoView = params.get('view') === 'photo';
const hud = document.getElementById('hud');
const stats = window.facecastVR = {
  ready: false, error: null, sessionId: null, framesRendered: 0, xr: { supported: false, presenting: false },
  frameIntervalsMs: [], renderMs: [], samples: [],   // samples: [t, shown pts, wanted pts, lip opening shown, audioLevel]
};
const keep = (arr, x, n = 600) => { arr.push(x); if (arr.length > n) arr.shift(); };
const pct = (a, q) => { if (!a.length) return null; const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };

async function main() {
  if (params.get('xr') === 'emulate') {
    const { XRDevice, metaQuest3 } = await import('/vr/node_modules/iwer/build/iwer.module.min.js');
    const device = new XRDevice(metaQuest3, { stereoEnabled: true, visibilityMaskEnabled: false });
    device.installRuntime({ forceInstall: true });
    stats.xrDevice = device;   // (tests move the emulated headset: device.position.set(x, y, z))
  }
  const avatarName = params.get('avatar');
  const token = params.get('token');
  const query = new URLSearchParams();
  if (avatarName) query.set('avatar', avatarName);
  if (token) query.set('token', token);
  const avatar = await Avatar.load(`/v1/avatar.glb?${query}`);
  const fixed = params.get('size') ? params.get('size').split('x').map(Number) : null;
  const renderer = new THREE.WebGLRenderer({ antialias: !photoView && !fixed, preserveDrawingBuffer: true });
  renderer.outputColorSpace = THREE.LinearSRGBColorSpace;   // the atlas' pixel values, unconverted
  renderer.setPixelRatio(photoView ? 1 : window.devicePixelRatio);
  const cam0 = avatar.info.photo_camera;
  if (photoView) renderer.setSize(cam0.width, cam0.height);
  else if (fixed) renderer.setSize(fixed[0], fixed[1]);
  else renderer.setSize(window.innerWidth, window.innerHeight);
  renderer.xr.enabled = true;
  document.body.appendChild(renderer.domElement);

  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0x111111);
  if (!photoView) avatar.hideOutsidePhoto();
  const stage = new THREE.Group();   // where the avatar stands (moved in front of the viewer in XR)
  stage.add(avatar.root);
  scene.add(stage);
  let camera;
  if (photoView) camera = photoCamera(avatar.info);
  else {
    const aspect = fixed ? fixed[0] / fixed[1] : window.innerWidth / window.innerHeight;
    camera = new THREE.PerspectiveCamera(35, aspect, 0.01, 20);
    camera.position.set(0, 0, 0.65);
    const controls = new OrbitControls(camera, renderer.domElement);
    controls.target.set(0, 0, 0);
    controls.update();
    if (!fixed) window.addEventListener('resize', () => {
      camera.aspect = window.innerWidth / window.innerHeight; camera.updateProjectionMatrix();
      renderer.setSize(window.innerWidth, window.innerHeight);
    });
  }
  if (navigator.xr) {
    stats.xr.supported = await navigator.xr.isSessionSupported('immersive-vr').catch(() => false);
    if (stats.xr.supported) document.body.appendChild(VRButton.createButton(renderer));
  }
  renderer.xr.setReferenceSpaceType('local');
  renderer.xr.addEventListener('sessionstart', () => { stats.xr.presenting = true; stage.position.set(0, 0, -0.7); });
  renderer.xr.addEventListener('sessionend', () => { stats.xr.presenting = false; stage.position.set(0, 0, 0); });

  const stream = new MotionStream(document.getElementById('voice'));
  stats.show = (v) => { avatar.apply(Float32Array.from(v)); renderer.render(scene, camera); return true; };
  stats.enterXR = async () => {   // what the VR button does (tests call it with an emulated XR device)
    const session = await navigator.xr.requestSession('immersive-vr', { optionalFeatures: ['local-floor'] });
    await renderer.xr.setSession(session);
    return true;
  };
  let last = null;
  renderer.setAnimationLoop((now, xrFrame) => {
    if (last !== null) keep(stats.frameIntervalsMs, now - last);
    last = now;
    const m = stream.current();
    if (m) {
      avatar.apply(m.v);
      keep(stats.samples, [performance.now(), m.shown, m.want, avatar.opening, stream.audioLevel ?? null, m.clocked]);
    }
    const t0 = performance.now();
    renderer.render(scene, camera);
    keep(stats.renderMs, performance.now() - t0);
    stats.framesRendered++;
    if (xrFrame) stats.xr.views = xrFrame.getViewerPose(renderer.xr.getReferenceSpace())?.views.length ?? 0;
    if (stats.framesRendered % 15 === 0) updateHud(stream);
  });
  stats.ready = true;
  if (params.get('connect') !== '0' && !photoView) {
    stats.sessionId = await stream.connect(location.origin, { sessionId: params.get('session'), avatar: avatarName, token });
  }
  stats.stream = stream;
  if (stats.sessionId) attachSpeech(stats.sessionId, token);
}

// The text box: server-side TTS into this session over the assistant WebSocket (session.attach).
function attachSpeech(sessionId, token) {
  const proto = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${proto}://${location.host}/v1/ws${token ? `?token=${encodeURIComponent(token)}` : ''}`);
  stats.events = [];
  ws.onopen = () => ws.send(JSON.stringify({ type: 'session.attach', session_id: sessionId }));
  ws.onmessage = (m) => {
    const ev = JSON.parse(m.data);
    stats.events.push(ev);
    if (ev.type === 'session.ready') for (const id of ['speak', 'interrupt']) document.getElementById(id).disabled = false;
  };
  document.getElementById('say').onsubmit = (e) => {
    e.preventDefault();
    const text = document.getElementById('text').value.trim();
    if (text) ws.send(JSON.stringify({ type: 'speak', text }));
  };
  document.getElementById('interrupt').onclick = () => ws.send(JSON.stringify({ type: 'interrupt' }));
}

function updateHud(stream) {
  const s = stats.samples.slice(-120).filter((x) => x[5]);
  const offsets = s.map((x) => (x[1] - x[2]) * 40);
  stats.motionHz = stream.rateHz();
  stats.avOffsetMs = offsets.length ? pct(offsets, 0.5) : null;
  stats.frameTimeMs = { interval_p50: pct(stats.frameIntervalsMs, 0.5), interval_p95: pct(stats.frameIntervalsMs, 0.95),
                        render_p50: pct(stats.renderMs, 0.5), render_p95: pct(stats.renderMs, 0.95) };
  const f = (x) => (x === null || x === undefined ? '–' : x.toFixed(1));
  hud.textContent = `facecast VR  ${stats.sessionId || ''}${stats.xr.presenting ? '  (XR)' : ''}\n` +
    `motion ${f(stats.motionHz)} Hz   A/V offset ${f(stats.avOffsetMs)} ms\n` +
    `frame ${f(stats.frameTimeMs.interval_p50)} ms (p95 ${f(stats.frameTimeMs.interval_p95)})   ` +
    `render ${f(stats.frameTimeMs.render_p50)} ms`;
}

main().catch((e) => { stats.error = String(e && e.stack || e); hud.textContent = `error: ${e}`; console.error(e); });
