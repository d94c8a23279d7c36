#pragma once
/// @file
/// hsgd over MPI: include this (with hsgd/hsgd.hpp) and link the CMake target hsgd::mpi, which
/// exists when CMake found MPI. Work in progress (issue 12): so far the layout of workers over
/// ranks, the unit average with the in-process bits, and ending the job when a rank fails.

#include "hsgd/mpi/failure.hpp"
#include "hsgd/mpi/unit_average.hpp"
