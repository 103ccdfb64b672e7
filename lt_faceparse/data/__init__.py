"""lt_faceparse.data"""
