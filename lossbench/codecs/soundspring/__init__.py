"""SoundSpring (Yao et al.): a dual-functional masked token LM over the RVQ codec.

Built so far: the masked LM and its training on the backbone's tokens with
the paper's masking schedule (``lossbench train soundspring``). Not built yet:
the sender's slicing and entropy coding, the receiver's concealment, and the
codec backend (issue #6).
"""
