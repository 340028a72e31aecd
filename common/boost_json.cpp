// Boost.JSON compiled into the project once (header-only mode): every other file includes
// <boost/json.hpp> only.
#include <boost/json/src.hpp>
