"""PLACEHOLDER: being written (logistic_pair, contrastive_pair, triplet, npair)."""


def logistic_pair(x, labels, *, temperature=0.1, bias=0.0, gather=False):
    raise NotImplementedError


def contrastive_pair(x, labels, *, pos_margin=0.0, neg_margin=1.0, gather=False):
    raise NotImplementedError


def triplet(x, labels, *, margin=0.2, mining="batch_hard", gather=False):
    raise NotImplementedError


def npair(anchors, positives, *, l2_reg=0.0, gather=False):
    raise NotImplementedError
