// The facecast avatar (GLB from `facecast avatar export`, served at /v1/avatar.glb) in three.js,
// driven by 58-float motion vectors (52 ARKit weights, yaw/pitch/roll, tx/ty/tz) exactly as the
// Python warp renderer reads them: the file's mouth rule (jawOpen aperture calibration,
// mouthClose share, lip-press seal), morph targets, and the skinned head pose.
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';

const MAX_ROTATION = 1.2;   // radians, as engine/render/warp/deform.py

export class Avatar {
  static async load(url) {
    const gltf = await new GLTFLoader().loadAsync(url);
    return new Avatar(gltf);
  }

  constructor(gltf) {
    this.root = gltf.scene;
    this.info = gltf.scene.userData.facecast;
    if (!this.info) throw new Error('not a facecast avatar GLB (no scene extras.facecast)');
    this.root.traverse((o) => {
      if (o.isSkinnedMesh) this.head = o;
      else if (o.isMesh) this.background = o;
    });
    this.headPose = this.root.getObjectByName('head_pose');
    this.headJoint = this.root.getObjectByName('head');
    this.names = this.head.userData.targetNames || Object.keys(this.head.morphTargetDictionary);
    this.index = Object.fromEntries(this.names.map((n, i) => [n, i]));
    for (const mesh of [this.background, this.head]) {
      // the renderer's painter's order (draw order of the file), its raw colours (no colour-space
      // conversion: the atlas pixels are what the Python renderer samples)
      mesh.frustumCulled = false;
      mesh.material.depthTest = false;
      mesh.material.depthWrite = false;
      const map = mesh.material.map;
      if (map) { map.colorSpace = THREE.NoColorSpace; map.generateMipmaps = false;
                 map.minFilter = THREE.LinearFilter; map.needsUpdate = true; }
    }
    this.background.renderOrder = 0;
    this.head.renderOrder = 1;
    this.weights = new Float32Array(this.names.length);
    this._opening = 0;
    this._m = new THREE.Matrix4();
  }

  // In 3D, the mesh's outer support ring (which the photo framing never shows) would show the
  // atlas beyond the photo's edges: draw only the triangles whose rest position lies on the photo
  // (the background quad's rectangle, vertices 0, 1, 3 = its top-left, top-right, bottom-left).
  hideOutsidePhoto() {
    const q = this.background.geometry.attributes.position;
    const tl = new THREE.Vector2(q.getX(0), q.getY(0));
    const right = new THREE.Vector2(q.getX(1), q.getY(1)).sub(tl);
    const down = new THREE.Vector2(q.getX(3), q.getY(3)).sub(tl);
    const m = this.head.material = this.head.material.clone();
    m.onBeforeCompile = (shader) => {
      Object.assign(shader.uniforms, { photoTL: { value: tl }, photoRight: { value: right }, photoDown: { value: down } });
      shader.vertexShader = 'uniform vec2 photoTL, photoRight, photoDown;\nvarying vec2 vPhoto;\n' +
        shader.vertexShader.replace('#include <begin_vertex>', '#include <begin_vertex>\n' +
          'vPhoto = vec2(dot(position.xy - photoTL, photoRight) / dot(photoRight, photoRight),\n' +
          '              dot(position.xy - photoTL, photoDown) / dot(photoDown, photoDown));');
      shader.fragmentShader = 'varying vec2 vPhoto;\n' + shader.fragmentShader.replace('#include <map_fragment>',
        'if (any(lessThan(vPhoto, vec2(0.0))) || any(greaterThan(vPhoto, vec2(1.0)))) discard;\n#include <map_fragment>');
    };
    m.needsUpdate = true;
  }

  // The weights the rig is deformed with (engine/avatar/mouth_rest.py: mouth_weights, MouthMap).
  mouthWeights(w) {
    const m = this.info.mouth, out = this.weights, ix = this.index;
    for (let i = 0; i < out.length; i++) out[i] = Math.min(1, Math.max(0, w[i]));
    const JAW = ix.jawOpen, CLOSE = ix.mouthClose;
    const press = 0.5 * (out[ix.mouthPressLeft] + out[ix.mouthPressRight]);
    if (!m.aperture_command) {
      const sealed = Math.min(1, m.press_seal_gain * press);
      if (sealed > out[CLOSE]) out[CLOSE] = sealed;
      return out;
    }
    // the commanded opening (engine/motion/opening.py), sealed by the press
    let opening = 0;
    for (const [name, k] of Object.entries(m.opening_terms)) {
      opening += k * (name in ix ? out[ix[name]] : 0.5 * (out[ix[name + 'Left']] + out[ix[name + 'Right']]));
    }
    opening = Math.min(1, Math.max(0, opening) * Math.max(0, 1 - m.press_seal_gain * press));
    const target = interp(opening, m.aperture_command, m.target_gap);
    const jaw = out[JAW];
    const share = jaw > 1e-6 ? Math.min(1, out[CLOSE] / jaw) : 0;
    out[JAW] = interp(jaw, m.aperture_command, m.aperture_jaw);
    out[CLOSE] = share * out[JAW] / m.close_over_jaw;
    // the jaw (gap short) or the lip seal (gap too wide) makes the rig's lip gap the target's
    let gap = m.gap0, height = m.height0;
    for (let i = 0; i < 52; i++) { gap += out[i] * m.gap_rows[i]; height += out[i] * m.height_rows[i]; }
    if (Math.max(gap, 0) < target * height - GAP_TOLERANCE) {
      out[JAW] = Math.min(1, out[JAW] + (target * height - gap) / (m.gap_rows[JAW] - target * m.height_rows[JAW]));
    } else if (gap > target * height + GAP_TOLERANCE) {
      out[CLOSE] += (target * height - gap) / (m.gap_rows[CLOSE] - target * m.height_rows[CLOSE]);
    }
    this._opening = opening;
    return out;
  }

  // Show one motion vector (58 floats, engine/motion/space.py order).
  apply(v) {
    const w = this.mouthWeights(v);
    const inf = this.head.morphTargetInfluences;
    for (let i = 0; i < w.length; i++) inf[i] = w[i];
    const clip = (x) => Math.min(MAX_ROTATION, Math.max(-MAX_ROTATION, x));
    const r = rotation(clip(v[52]), clip(v[53]), clip(v[54]));
    // face space (y down) → glTF (y up): R' = F R F with F = diag(1, -1, 1)
    this._m.set(r[0], -r[1], r[2], 0,  -r[3], r[4], -r[5], 0,  r[6], -r[7], r[8], 0,  0, 0, 0, 1);
    this.headJoint.quaternion.setFromRotationMatrix(this._m);
    const unit = this.info.unit_m, d = this.info.camera_distance;
    const s = d / Math.max(d - v[57] * unit, 1e-3 * unit);
    this.headPose.scale.set(s, s, 1);
    this.headPose.position.set(v[55] * unit, -v[56] * unit, 0);
  }

  get jawOpen() { return this.head.morphTargetInfluences[this.index.jawOpen]; }

  // The lip opening the rig shows (0 closed .. 1 the calibrated jaw's widest; the commanded
  // opening the mouth rule rendered); without a calibration, the jaw.
  get opening() { return this.info.mouth.aperture_command ? this._opening : this.jawOpen; }
}

// engine/motion/pose.py: matrix_from_euler (row-major 3×3): R = R_yaw R_pitch R_roll
export function rotation(yaw, pitch, roll) {
  const cy = Math.cos(yaw), sy = Math.sin(yaw), cp = Math.cos(pitch), sp = Math.sin(pitch);
  const cr = Math.cos(roll), sr = Math.sin(roll);
  const a = [cy, 0, sy, 0, 1, 0, -sy, 0, cy];
  const b = [1, 0, 0, 0, cp, sp, 0, -sp, cp];
  const c = [cr, -sr, 0, sr, cr, 0, 0, 0, 1];
  return mul(mul(a, b), c);
}

function mul(a, b) {
  const o = new Array(9).fill(0);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) o[3 * i + j] += a[3 * i + k] * b[3 * k + j];
  return o;
}

// numpy.interp: piecewise linear, clamped to the end values
const GAP_TOLERANCE = 1e-6;  // engine/avatar/mouth_rest.py

function interp(x, xs, ys) {
  if (x <= xs[0]) return ys[0];
  for (let i = 1; i < xs.length; i++) {
    if (x <= xs[i]) return ys[i - 1] + (ys[i] - ys[i - 1]) * (x - xs[i - 1]) / (xs[i] - xs[i - 1]);
  }
  return ys[ys.length - 1];
}

// The orthographic camera that frames the output exactly as WarpRenderer(width, height) does.
export function photoCamera(info) {
  const c = info.photo_camera;
  const tl = new THREE.Vector3(c.top_left[0], c.top_left[1], 0);
  const right = new THREE.Vector3(c.right[0], c.right[1], 0);
  const down = new THREE.Vector3(c.down[0], c.down[1], 0);
  const centre = tl.clone().addScaledVector(right, 0.5).addScaledVector(down, 0.5);
  const cam = new THREE.OrthographicCamera(-right.length() / 2, right.length() / 2,
                                           down.length() / 2, -down.length() / 2, 0.01, 10);
  cam.position.set(centre.x, centre.y, 1);
  cam.up.set(-down.x, -down.y, 0).normalize();   // the photo's "up" (the face frame may be rolled)
  cam.lookAt(centre.x, centre.y, 0);
  return cam;
}
