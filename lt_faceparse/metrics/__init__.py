"""lt_faceparse.metrics"""
