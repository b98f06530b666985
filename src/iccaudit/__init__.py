"""iccaudit: find procurement fraud in intelligent-computing-centre (智算中心) tender files."""

__version__ = "0.1.0"
