from lt_faceparse.cli import run

run()
