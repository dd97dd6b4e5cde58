"""Training-free statistics (proxies) and the engine that scores search spaces with them."""
