"""``fargan-plc``: Opus 1.5's deep-PLC network fills the features of lost frames.

The feature stream is voiced frame by frame with a streaming FARGAN. Each
received frame updates the PLC network with its features and the Burg
cepstrum of the audio just synthesised for it (as ``dnn/lpcnet_plc.c`` does
with decoded PCM); a lost frame takes the network's prediction, and after
ten lost frames in a row the energy (c0) is attenuated as upstream does.
"""

from __future__ import annotations

import numpy as np

#: upstream's c0 attenuation by lost-frame count (dnn/lpcnet_plc.c att_table)
ATT_TABLE = (0, 0, -0.2, -0.2, -0.4, -0.4, -0.8, -0.8, -1.6, -1.6)


def conceal_features(backbone, feats: np.ndarray, lost: np.ndarray, with_features: bool = False):
    """Audio (320 T samples, as ``FarganBackbone.synthesize``) for (2T, 20) features with ``lost`` frames predicted;
    with ``with_features``, (audio, the features it voiced: the predicted ones in the lost frames)."""
    from lossbench.native.fargan import FRAME, FarganSynth, PlcPredictor, burg_cepstrum

    f = np.asarray(feats, np.float32).copy()
    syn = FarganSynth()
    syn.push(backbone.silence_features())  # the same start as the offline path (four silent frames)
    plc = PlcPredictor()
    for s in backbone.silence_features():
        plc.received(s, burg_cepstrum(np.zeros(FRAME, np.float32)))
    out = [np.zeros(FRAME, np.float32)]
    run = 0
    for i in range(f.shape[0]):
        if lost[i]:
            pred = plc.lost()
            run += 1
            if run > len(ATT_TABLE):
                pred[0] = max(-10.0, pred[0] + ATT_TABLE[-1] - 2 * (run - len(ATT_TABLE)))
            else:
                pred[0] += ATT_TABLE[run - 1]
            f[i] = pred
        elif not np.isfinite(f[i]).all():
            f[i] = f[i - 1] if i else backbone.silence_features()[-1]
        y = syn.push(f[i][None])
        if not lost[i]:
            run = 0
            plc.received(f[i], burg_cepstrum(y if y.size == FRAME else np.zeros(FRAME, np.float32)))
        out.append(y)
    # 160 samples of the silence prefix, none for frame 0 (FARGAN's start), 160 for each later frame
    audio = np.nan_to_num(np.concatenate(out), nan=0.0, posinf=0.0, neginf=0.0)
    return (audio, f) if with_features else audio
