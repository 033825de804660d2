# Fails when a file of one stage includes a header of a stage its library does not depend on
# (directly or through another stage), so that the layering of docs/architecture.md is what
# the build enforces, not a convention.
#
# cmake -DSOURCE_DIR=<repo> -DSTAGE_DEPS=<stage:dep,dep|stage:...> -P check_stage_includes.cmake
#
# A file's stage: include/sluice/<stage>/ and src/<stage>/ (detail/ is core); the top-level
# headers and src/*.cpp are core, except the engine's (dispatcher, metrics, the umbrella
# header). An include names a stage the same way: <sluice/<stage>/...>, "<stage>/...".

cmake_minimum_required(VERSION 3.25)

set(stages core source admission transport parse sink redis mock harness loadgen engine batch batch_api cli)
set(engine_files dispatcher dispatcher_impl dispatcher_options dispatcher_response dispatcher_delivery
    dispatcher_routing metrics prometheus sluice)

# Direct dependencies, as the CMake targets declare them (passed in by tests/CMakeLists.txt).
string(REPLACE "|" ";" stage_deps "${STAGE_DEPS}")
foreach(entry IN LISTS stage_deps)
    string(REPLACE ":" ";" parts "${entry}")
    list(GET parts 0 stage)
    list(LENGTH parts n)
    set(direct_${stage} "")
    if(n GREATER 1)
        list(GET parts 1 deps)
        string(REPLACE "," ";" direct_${stage} "${deps}")
    endif()
endforeach()

# Transitive closure, and every stage may include itself and core.
foreach(stage IN LISTS stages)
    set(reach ${stage} core)
    set(todo ${direct_${stage}})
    while(todo)
        list(POP_FRONT todo dep)
        if(NOT dep IN_LIST reach)
            list(APPEND reach ${dep})
            list(APPEND todo ${direct_${dep}})
        endif()
    endwhile()
    set(allowed_${stage} ${reach})
endforeach()

function(stage_of_name name out) # "transport/connection.hpp", "dispatcher.hpp", ...
    string(REGEX MATCH "^([a-z_]+)/" m "${name}")
    if(m)
        set(dir ${CMAKE_MATCH_1})
        if(dir STREQUAL "detail")
            set(${out} core PARENT_SCOPE)
        elseif(dir IN_LIST stages)
            set(${out} ${dir} PARENT_SCOPE)
        else()
            set(${out} "" PARENT_SCOPE) # not a stage folder (support/, tests' own)
        endif()
        return()
    endif()
    get_filename_component(stem "${name}" NAME_WE)
    if(stem IN_LIST engine_files)
        set(${out} engine PARENT_SCOPE)
    else()
        set(${out} core PARENT_SCOPE)
    endif()
endfunction()

file(GLOB_RECURSE files RELATIVE ${SOURCE_DIR}
    ${SOURCE_DIR}/include/sluice/*.hpp ${SOURCE_DIR}/src/*.hpp ${SOURCE_DIR}/src/*.cpp)
set(violations "")
set(checked 0)
foreach(file IN LISTS files)
    if(file MATCHES "^include/sluice/(.*)$")
        stage_of_name("${CMAKE_MATCH_1}" stage)
    elseif(file MATCHES "^src/(.*)$")
        stage_of_name("${CMAKE_MATCH_1}" stage)
    endif()
    if(NOT stage)
        continue()
    endif()
    math(EXPR checked "${checked} + 1")
    file(STRINGS ${SOURCE_DIR}/${file} lines REGEX "^#include [<\"]")
    foreach(line IN LISTS lines)
        if(line MATCHES "^#include <sluice/([^>]+)>")
            stage_of_name("${CMAKE_MATCH_1}" target)
        elseif(line MATCHES "^#include \"([^\"]+)\"")
            stage_of_name("${CMAKE_MATCH_1}" target)
        else()
            continue()
        endif()
        if(target AND NOT target IN_LIST allowed_${stage})
            list(APPEND violations "${file} (${stage}) includes ${line} (${target})")
        endif()
    endforeach()
endforeach()

if(checked LESS 20)
    message(FATAL_ERROR "only ${checked} files found under ${SOURCE_DIR}: wrong SOURCE_DIR?")
endif()
if(violations)
    list(JOIN violations "\n  " text)
    message(FATAL_ERROR "stage boundaries crossed:\n  ${text}")
endif()
message(STATUS "${checked} files keep to their stages' dependencies")
