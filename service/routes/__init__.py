"""One router per concern: prediction, health, model information, the web page."""
