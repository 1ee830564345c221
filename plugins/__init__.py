"""The model plugins shipped with kagglesalt, installed as `kagglesalt_plugins`."""
