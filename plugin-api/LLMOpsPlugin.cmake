# llmops_add_plugin(NAME SOURCES...)
#
# Builds an llm-ops adapter module NAME.so: no "lib" prefix, hidden visibility (only
# llmops_plugin_entry is exported), no undefined symbols, installed into the plugin
# directory. In the llm-ops tree it uses the llmops_plugin_api target; out of tree it finds
# the installed headers with pkg-config:
#
#   include(/usr/lib/<multiarch>/cmake/llm-ops/LLMOpsPlugin.cmake)
#   llmops_add_plugin(myplugin myplugin.c)
function(llmops_add_plugin name)
  add_library(${name} MODULE ${ARGN})
  set_target_properties(${name} PROPERTIES PREFIX "" C_VISIBILITY_PRESET hidden
                                           VISIBILITY_INLINES_HIDDEN ON)
  # No undefined symbols: a plugin links only what it declares. Sanitizer builds are the
  # exception (the sanitizer runtime comes from the executable, not the module).
  if(NOT LLMOPS_SANITIZE AND NOT LLMOPS_FUZZ)
    target_link_options(${name} PRIVATE -Wl,-z,defs)
  endif()
  if(TARGET llmops_plugin_api)
    target_link_libraries(${name} PRIVATE llmops_plugin_api)
    set(dir ${LLMOPS_PLUGINDIR})
  else()
    find_package(PkgConfig REQUIRED)
    pkg_check_modules(LLMOPS_PLUGIN REQUIRED IMPORTED_TARGET llmops-plugin)
    target_link_libraries(${name} PRIVATE PkgConfig::LLMOPS_PLUGIN)
    pkg_get_variable(dir llmops-plugin plugindir)
  endif()
  install(TARGETS ${name} LIBRARY DESTINATION ${dir})
endfunction()
