"""PLACEHOLDER: being written (nt_xent, info_nce, dcl, hcl, clip)."""


def nt_xent(z1, z2, *, temperature=0.5, gather=False, chunk_size=None):
    raise NotImplementedError


def info_nce(query, key, *, temperature=0.07, negatives=None, in_batch_negatives=True, gather=False, chunk_size=None):
    raise NotImplementedError


def dcl(z1, z2, *, temperature=0.5, tau_plus=0.1, gather=False, chunk_size=None):
    raise NotImplementedError


def hcl(z1, z2, *, temperature=0.5, tau_plus=0.1, beta=1.0, gather=False, chunk_size=None):
    raise NotImplementedError


def clip(a, b, *, temperature=0.07, gather=False, chunk_size=None):
    raise NotImplementedError
