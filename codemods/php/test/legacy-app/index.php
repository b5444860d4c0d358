<?php
/**
 * Front page of a small legacy shop (PHP 5.6 style: array(), includes, short echo tags).
 */
require_once __DIR__ . '/includes/bootstrap.php';
include __DIR__ . '/includes/header.php';

if (!isset($_SESSION['visits'])) {
    $_SESSION['visits'] = 0;
}
$_SESSION['visits']++;
if (isset($_GET['user'])) {
    $_SESSION['user'] = (string) $_GET['user'];
}
$links = array('Admin' => 'admin/index.php', 'API' => 'api.php');
?>
<main>
  <p class="visits">visits=<?= (int) $_SESSION['visits'] ?></p>
  <p class="user">user=<?= h(isset($_SESSION['user']) ? $_SESSION['user'] : 'guest') ?></p>
  <ul>
  <?php foreach ($links as $label => $href): ?>
    <li><a href="<?= h($href) ?>"><?= h($label) ?></a></li>
  <?php endforeach; ?>
  </ul>
</main>
<?php include __DIR__ . '/templates/footer.php';
