"""lt_faceparse.reporting"""
