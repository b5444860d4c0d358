<?php
// Site configuration (2014). Sessions were kept in files on the web server.
define('SITE_NAME', 'Legacy Shop');
$db_config = array(
    'host' => 'localhost',
    'name' => 'shop',
);

ini_set('session.save_handler', 'files');
session_save_path('/tmp/x');
ini_set('session.gc_maxlifetime', '1440');
ini_set('session.cookie_httponly', '1');
