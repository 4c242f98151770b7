"""Notes from stems: transcription methods per stem kind, MIDI export, and the cached notes."""
