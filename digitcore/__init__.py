"""What the trainer, the service and the predictor must agree on.

The model architecture, the checkpoint format and the image pipeline live here once;
``trainer``, ``service`` and ``predictor`` import this package and never each other.
"""

MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
IMAGE_SIZE = 28
NUM_CLASSES = 10
WORKING_SIZE = 512  # large photos are decoded reduced (JPEG draft) and analysed at about this size
