"""MotionFrame -> deformed render-mesh vertices of an avatar (CPU, NumPy; ~0.2 ms).

Steps: blendshapes on the 478-landmark rig; every render vertex as a weighted sum of
rig landmarks + offset; head pose blended per vertex (background 0 ... head 1);
orthographic projection back to photo pixels.
"""
from __future__ import annotations

import numpy as np

from engine.avatar.asset import Avatar
from engine.avatar.lip_contact import LipContact
from engine.avatar.mouth_rest import MouthMap, mouth_weights
from engine.avatar.rig import apply_pose, rotation_matrix
from engine.motion.space import MotionFrame

MAX_ROTATION = 1.2  # radians; larger head rotations are clamped (the 2.5D mesh folds)


class MeshDeformer:
    def __init__(self, avatar: Avatar):
        self.avatar = avatar
        self.neutral = avatar.rig_neutral.reshape(-1).astype(np.float32)
        self.deltas = avatar.rig_deltas.reshape(52, -1).astype(np.float32)
        self.anchors = avatar.vertex_anchors
        self.weights = avatar.vertex_weights[:, :, None].astype(np.float32)
        self.offsets = avatar.vertex_offsets.astype(np.float32)
        self.pose_w = avatar.vertex_pose_weight[:, None].astype(np.float32)
        self.pose_dz = avatar.vertex_pose_dz.astype(np.float32)
        self.pivot = avatar.head_pivot.astype(np.float32)
        self.to_img = (avatar.face_scale * avatar.face_roll_matrix()).T.astype(np.float32)
        self.origin = avatar.face_origin.astype(np.float32)
        self.lip_contact = LipContact(avatar.rig_neutral)
        self.mouth = MouthMap.of(avatar)

    def expression(self, motion: MotionFrame) -> np.ndarray:
        """(478, 3) face-space landmarks of the motion's expression (no head pose); lips
        that the linear blend crossed are put back in contact."""
        w = mouth_weights(motion.blendshapes, self.mouth)
        return self.lip_contact((self.neutral + w @ self.deltas).reshape(-1, 3))

    def vertices(self, motion: MotionFrame) -> tuple[np.ndarray, np.ndarray]:
        """(photo-pixel xy (V, 2), face-space depth z (V,)) of every render vertex."""
        v = self.posed_vertices(motion)
        xy = v[:, :2] @ self.to_img + self.origin
        return xy, v[:, 2]

    def posed_vertices(self, motion: MotionFrame) -> np.ndarray:
        """(V, 3) face-space render vertices of the motion: expression, then head pose."""
        if not motion.is_finite():
            raise ValueError("motion frame contains NaN or inf")
        expr = self.expression(motion)
        v = (self.weights * expr[self.anchors]).sum(1) + self.offsets
        yaw, pitch, roll = np.clip(motion.head_rotation, -MAX_ROTATION, MAX_ROTATION)
        rot = rotation_matrix(yaw, pitch, roll)
        # the rotation sees each vertex at its pose depth (z + pose_dz: the face edge's
        # steep slope capped, the support falling toward the pivot); the offset is taken
        # back out afterwards, so only the displacement changes (exact at neutral)
        lifted = v.copy()
        lifted[:, 2] += self.pose_dz
        posed = apply_pose(lifted, rot, motion.head_translation, self.pivot)
        posed[:, 2] -= self.pose_dz * rot[2, 2]
        v += self.pose_w * (posed - v)
        return v
