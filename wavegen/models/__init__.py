"""Models built from :mod:`wavegen.nn`: WaveNet, autoencoder, vocoder, priors."""
