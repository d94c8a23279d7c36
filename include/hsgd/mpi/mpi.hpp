#pragma once
/// @file
/// hsgd over MPI: include this (with hsgd/hsgd.hpp) and link the CMake target hsgd::mpi, which
/// exists when CMake found MPI. `hsgd::mpi::Cluster` is the Engine's backend over MPI (bit for
/// bit the in-process run at any number of ranks); `run_or_abort` ends the whole job when one
/// rank fails; `Session` initialises and finalises MPI.

#include "hsgd/mpi/cluster.hpp"
#include "hsgd/mpi/failure.hpp"
#include "hsgd/mpi/layout.hpp"
#include "hsgd/mpi/session.hpp"
