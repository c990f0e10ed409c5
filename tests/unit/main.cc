// Catch2 entry point for every unit test binary.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
