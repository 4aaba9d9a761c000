"""Configuration files shipped with svac (installed as the resource package ``svac.configs``)."""
