"""PLACEHOLDER: being written (byol, barlow_twins, vicreg, swav, sinkhorn)."""


def byol(p, z):
    raise NotImplementedError


def barlow_twins(z1, z2, *, lambd=5e-3, gather=False):
    raise NotImplementedError


def vicreg(z1, z2, *, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0, gather=False):
    raise NotImplementedError


def sinkhorn(scores, *, epsilon=0.05, iterations=3):
    raise NotImplementedError


def swav(scores1, scores2, *, temperature=0.1, epsilon=0.05, sinkhorn_iterations=3, gather=False):
    raise NotImplementedError
