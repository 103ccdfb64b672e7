"""lt_faceparse.engine"""
