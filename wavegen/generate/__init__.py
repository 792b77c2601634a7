"""Sampling loops, hierarchy decoding and streaming output."""
