"""Baselines SegFace is compared with: BiSeNet (face-parsing.PyTorch), FCN, SegFormer-style MLP head."""
