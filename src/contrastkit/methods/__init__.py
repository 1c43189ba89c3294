"""Methods: which views, head and loss make SupCon, H-SCL, SimCLR, MoCo, BYOL, SwAV, CLIP..."""
