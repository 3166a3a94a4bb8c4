"""The bundled demo: generated data, the small model's training, and ``zfaccel demo``."""
