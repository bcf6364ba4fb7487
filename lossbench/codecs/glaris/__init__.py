"""Glaris-style transceiver (Han et al.): hyperprior transform coding in the RVQ backbone's latent
space, whose RVQ-coded side information is re-sent as in-band FEC and guides concealment.

- :mod:`.model`: g_a, h_a + RVQ, h_s, f_entropy, f_PLC with mask/confidence tokens, g_s, code predictor;
- :mod:`.train`: ``lossbench train glaris`` (stage II, backbone frozen) and export;
- :mod:`.codec`: the ``glaris`` codec backend.
"""
