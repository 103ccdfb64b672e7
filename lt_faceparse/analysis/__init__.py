"""lt_faceparse.analysis"""
