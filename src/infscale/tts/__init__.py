"""infscale.tts."""
