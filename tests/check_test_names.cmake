# Fails when a Catch2 test name would not run as CTest runs it:
# - a ';': catch_discover_tests splits the name there, and CTest then runs filters that match
#   nothing (a test that silently never runs);
# - a leading '-': the test binary, given the name as its argument, takes it for an option
#   ("Unrecognised token") and the test fails without running.
cmake_minimum_required(VERSION 3.25)
file(GLOB_RECURSE sources "${SOURCE_DIR}/tests/*.cpp")
set(bad "")
foreach(file IN LISTS sources)
    file(STRINGS "${file}" lines REGEX "TEST_CASE\\(\"([^\"]*\\;|-)")
    foreach(line IN LISTS lines)
        string(APPEND bad "\n  ${file}: ${line}")
    endforeach()
endforeach()
if(bad)
    message(FATAL_ERROR "test names with ';' or a leading '-' (CTest cannot run them):${bad}")
endif()
