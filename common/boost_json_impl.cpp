// Boost.JSON's implementation, compiled once for the whole program (header-only use).
#include <boost/json/src.hpp>
