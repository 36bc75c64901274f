# cmake -DDIR=<plugin-api> -P check-conventions.cmake
#
# Every category header (a plugin-api/*.h that declares ops: "llmops_op_fn *") carries the
# same block, from "/* ---- category conventions" to "/* ---- end of category conventions
# ---- */": the rules a plugin author reads in whichever header they open. Fails when one
# lacks it or when two copies differ.
if(NOT DIR)
  message(FATAL_ERROR "usage: cmake -DDIR=<plugin-api directory> -P check-conventions.cmake")
endif()
set(begin_mark "/* ---- category conventions")
set(end_mark "/* ---- end of category conventions ---- */")

file(GLOB headers ${DIR}/*.h)
list(SORT headers)
set(reference "")
set(reference_name "")
foreach(header IN LISTS headers)
  get_filename_component(name ${header} NAME)
  file(READ ${header} text)
  string(FIND "${text}" "llmops_op_fn *" declares_ops)
  if(declares_ops EQUAL -1)
    continue()
  endif()
  string(FIND "${text}" "${begin_mark}" begin)
  string(FIND "${text}" "${end_mark}" end)
  if(begin EQUAL -1 OR end EQUAL -1 OR end LESS begin)
    message(FATAL_ERROR "${header}: declares ops but has no category conventions block "
                        "(copy it, markers included, from another category header)")
  endif()
  math(EXPR length "${end} - ${begin}")
  string(SUBSTRING "${text}" ${begin} ${length} block)
  if(reference_name STREQUAL "")
    set(reference "${block}")
    set(reference_name "${name}")
  elseif(NOT "${block}" STREQUAL "${reference}")
    message(FATAL_ERROR "${header}: its category conventions block differs from "
                        "${reference_name}'s; the copies must stay identical (diff them)")
  endif()
endforeach()
