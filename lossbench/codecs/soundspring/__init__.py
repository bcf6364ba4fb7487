"""SoundSpring (Yao et al.): a dual-functional masked token LM over the RVQ codec.

- :mod:`.mlm`: the masked LM and the paper's training masks;
- :mod:`.train`: ``lossbench train soundspring`` on the backbone's tokens, export, model card;
- :mod:`.coding`: slices, Phi, packets, range coding under the MLM's PMFs, the receiver's R/L/I labels;
- :mod:`.conceal`: MLM token concealment (cases 1–4);
- :mod:`.codec`: the ``soundspring`` codec backend (SoundSpring-S and non-streaming).
"""
