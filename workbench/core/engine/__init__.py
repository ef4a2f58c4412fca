"""Keras lives here: layers, backbones, weights, the model, compile, callbacks, devices."""
