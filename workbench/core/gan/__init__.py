"""The GAN lab's engine: networks, training, FID and sweeps."""
