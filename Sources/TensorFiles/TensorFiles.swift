// Tensor file formats: safetensors, PyTorch zip checkpoints, NumPy .npy/.npz, model configs.
