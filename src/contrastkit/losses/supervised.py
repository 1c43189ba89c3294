"""PLACEHOLDER: being written (supcon, hscl)."""


def supcon(x, labels, *, temperature=0.1, hardness=0.0, gather=False, chunk_size=None):
    raise NotImplementedError


def hscl(x, labels, *, temperature=0.5, beta=1.0, num_negatives=None, gather=False, chunk_size=None):
    raise NotImplementedError
