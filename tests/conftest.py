import os

# Quiet TensorFlow's C++ start-up log; it says nothing about our code.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
