# Sourced by the README's commands: real Fashion-MNIST from Debian's dataset-fashion-mnist, where
# it is missing and we may install it (root with apt-get). Never fatal: tests that need it skip.
fmnist=/usr/share/datasets/fashion-mnist
if [ ! -d "$fmnist" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's dataset-fashion-mnist (real Fashion-MNIST, offline data for the cpu budget)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
        || echo "warning: could not install dataset-fashion-mnist; tests that need it will be skipped" >&2
fi
