"""What the tests share: servers, browsers, media peers, clients of the protocol; no test module imports another."""
