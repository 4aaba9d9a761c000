"""Training recipes (installed as ``svac.recipes``); run them with ``svac train CONFIG``."""
