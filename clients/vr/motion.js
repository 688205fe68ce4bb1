// A motion-mode session over WebRTC (docs/protocol.md, "Motion mode"): the voice on an Opus
// track, 244-byte motion frames on the "motion" data channel, and the clock that ties them:
// frame pts k starts at audio sample k·samples_per_frame; the sample being heard now comes from
// the audio receiver's getSynchronizationSources() (rtpTimestamp, timestamp) and the server's
// audio_rtp_origin. Motion is shown at the audio playback position, interpolated between the
// 25 Hz frames at display rate.

const FRAME_BYTES = 244, DIM = 58;
const OPUS_DELAY = 312;        // samples: decoded Opus plays 6.5 ms after its RTP timestamp (encoder look-ahead)
const KEEP_FRAMES = 250;       // 10 s of frames by pts
const FALLBACK_DELAY_MS = 120; // without rtpTimestamp: show motion this long after it arrived

export function decodeFrame(buf) {
  if (buf.byteLength !== FRAME_BYTES) throw new Error(`motion frame of ${buf.byteLength} bytes, expected 244`);
  const dv = new DataView(buf);
  if (dv.getUint8(0) !== 70 || dv.getUint8(1) !== 77 || dv.getUint8(2) !== 1) throw new Error('bad motion frame header');
  const pts = Number(dv.getBigInt64(4, true));
  const v = new Float32Array(DIM);
  for (let i = 0; i < DIM; i++) v[i] = dv.getFloat32(12 + 4 * i, true);
  return { pts, v };
}

export class MotionStream {
  constructor(audioElement) {
    this.audio = audioElement;
    this.frames = new Map();      // pts → Float32Array(58)
    this.arrivals = [];           // performance.now() of received frames (rate)
    this.arrivalPts = [];         // their pts
    this.newest = -1;
    this.layout = null;           // motion.start
    this.origin = null;           // audio_rtp_origin from the latest `clock`
    this.sessionId = null;
    this.lastShown = new Float32Array(DIM);
  }

  async connect(base, { sessionId = null, avatar = null, token = null } = {}) {
    const pc = this.pc = new RTCPeerConnection();
    pc.addTransceiver('audio', { direction: 'recvonly' });
    const ch = pc.createDataChannel('motion', { ordered: false, maxRetransmits: 0 });
    ch.binaryType = 'arraybuffer';
    ch.onmessage = (e) => this._message(e.data);
    pc.ontrack = (e) => {
      this.receiver = e.receiver;
      this.audio.srcObject = e.streams[0] || new MediaStream([e.track]);
      this.audio.play().catch(() => {});
    };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
      setTimeout(resolve, 2000);
    });
    const body = { sdp: pc.localDescription.sdp, type: 'offer' };
    if (sessionId) body.session_id = sessionId; else body.output = 'motion';
    if (avatar) body.avatar = avatar;
    const headers = { 'Content-Type': 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    const resp = await fetch(`${base}/v1/offer`, { method: 'POST', headers, body: JSON.stringify(body) });
    const answer = await resp.json();
    if (!resp.ok) throw new Error(`${answer.error}: ${answer.message}`);
    this.sessionId = answer.session_id;
    await pc.setRemoteDescription(answer);
    return answer.session_id;
  }

  _message(data) {
    if (typeof data === 'string') {
      const m = JSON.parse(data);
      if (m.type === 'motion.start') this.layout = m;
      else if (m.type === 'clock') this.origin = m.audio_rtp_origin;
      return;
    }
    const { pts, v } = decodeFrame(data);
    this.frames.set(pts, v);
    v.arrival = performance.now();
    this.arrivals.push(v.arrival);
    this.arrivalPts.push(pts);
    if (this.arrivals.length > 100) { this.arrivals.shift(); this.arrivalPts.shift(); }
    if (pts > this.newest) this.newest = pts;
    if (this.frames.size > KEEP_FRAMES) {
      for (const k of this.frames.keys()) { if (k < this.newest - KEEP_FRAMES) this.frames.delete(k); else break; }
    }
  }

  // Motion frames per second over the last 100 arrivals.
  rateHz() {
    const a = this.arrivals;
    return a.length > 1 ? 1000 * (a.length - 1) / (a[a.length - 1] - a[0]) : 0;
  }

  // Over the last 100 arrivals: the session clock's rate (pts per second of arrival time) and the
  // share of its frames that arrived (a pts gap: the server skipped ticks, or the channel lost them).
  clockStats() {
    const a = this.arrivals, p = this.arrivalPts;
    if (a.length < 2) return { ptsHz: 0, delivered: 0 };
    const span = Math.max(...p) - Math.min(...p);
    return { ptsHz: 1000 * span / (a[a.length - 1] - a[0]), delivered: (p.length - 1) / Math.max(1, span) };
  }

  // The session audio sample being heard now, or null (no clock / no rtpTimestamp yet).
  audioSample() {
    if (!this.receiver || this.origin === null || !this.layout) return null;
    const src = this.receiver.getSynchronizationSources()[0];
    if (!src || src.rtpTimestamp === undefined) return null;
    const now = performance.timeOrigin + performance.now();
    const rtp = ((src.rtpTimestamp - this.origin) % 4294967296 + 4294967296) % 4294967296;
    this.audioLevel = src.audioLevel;
    return rtp + (now - src.timestamp) * this.layout.sample_rate / 1000 - OPUS_DELAY;
  }

  // The motion to show now: {v, want, shown} with want = the frame position the audio asks for,
  // shown = the position actually shown (held at the newest frame when motion is late).
  current() {
    if (this.newest < 0) return null;
    const s = this.audioSample();
    let want;
    if (s !== null) want = s / this.layout.samples_per_frame;
    else {   // no audio clock: a fixed delay after arrival
      const newest = this.frames.get(this.newest);
      want = this.newest + (performance.now() - newest.arrival - FALLBACK_DELAY_MS) / 40;
    }
    const shown = Math.min(want, this.newest);
    const k = Math.floor(shown), t = shown - k;
    const a = this._near(k, -1), b = this._near(k + 1, +1) || a;
    if (!a) return null;
    const out = this.lastShown;
    for (let i = 0; i < DIM; i++) out[i] = a[i] + (b[i] - a[i]) * t;
    return { v: out, want, shown, clocked: s !== null };
  }

  _near(k, step) {   // frame k, or the closest received one in direction `step` (pts gaps: a skipped tick)
    for (let i = 0; i < 4; i++) { const f = this.frames.get(k + i * step); if (f) return f; }
    return this.frames.get(k) || null;
  }

  close() { if (this.pc) this.pc.close(); }
}
